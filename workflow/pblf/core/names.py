"""The pipeline's vocabulary, each name written once: methods, run kinds, table and figure ids, CSV columns.

Every module, rule and test that needs one of these names imports it from here, so a name cannot drift between
the writer of a file and its reader. The words follow the thesis and the glossary (docs/protocol.md):

* a **candidate** is one point (phi, mode) of the search space;
* a **run** is one training of one candidate for one budget with one seed (a folder under ``results/runs``), of
  one **kind**: a search's evaluation, a repeat, or a convergence rerun;
* an **evaluation** is a search's run of one proposed candidate, with its accuracies;
* an **iteration** is one proposal of a search (PBLF-BO's iteration 0 is its random initial batch);
* a **repeat** is the chosen candidate of a search (or Standard) retrained with one repeat seed;
* a **trial** is one repeat's result, a row of ``tables/trials.csv`` (Appendix B's "experimental trials").

This module imports nothing from the package, so the Snakefile and the lightest commands can use it.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------------------------- methods

#: Standard backpropagation, phi = (0, 0, 0, 1) in mode 1111: the baseline every method is compared with. The search
#: methods are registered in :mod:`pblf.search.registry`, which also says in which order tables list methods.
STANDARD = "Standard"

# ---------------------------------------------------------------------------------------------------------- runs

#: The kinds of training run; ``manual`` is a run started by hand with ``pblf train``, outside any stage.
RUN_KINDS: tuple[str, ...] = ("search", "repeat", "convergence", "generalisation", "manual")
#: The statuses a finished run can have: ``diverged`` when its loss became non-finite (a result, not a failure),
#: ``stopped`` when low-fidelity search stopped it short of its budget (:mod:`pblf.search.prune`).
FINISHED_STATUSES: tuple[str, ...] = ("ok", "diverged", "stopped")
#: The statuses of runs that trained their whole budget (or tried to): the only ones a search chooses from.
FULL_BUDGET_STATUSES: tuple[str, ...] = ("ok", "diverged")
#: A search's evaluation whose run stopped at a rung and was continued by a later iteration (successive halving).
PROMOTED = "promoted"

# ---------------------------------------------------------------------------------------------------- data

#: The data set as arrays, written once by the data stage beside split.json (``data/arrays/<name>.npy``), so that no
#: training job reads and unpickles the data set again: a job memory-maps them in milliseconds.
ARRAYS: tuple[str, ...] = ("train_images", "train_labels", "test_images", "test_labels")

# ------------------------------------------------------------------------------------------- the meta-network

#: The meta-network's weights, in the order of the thesis's Table 6.2 (W_1, W_2, B_1, B_2).
PHI_NAMES: tuple[str, ...] = ("w1", "w2", "b1", "b2")
#: The four places of the target network, in the bit order of a mode (left to right).
PLACES: tuple[str, ...] = ("stem", "group 1", "group 2", "group 3")


def places_text() -> str:
    """The places as one cell of a CSV file or a caption: ``stem/group 1/group 2/group 3``."""
    return "/".join(PLACES)

# ------------------------------------------------------------------------------------------- tables and figures

#: The tables of the thesis (and ``table_6_2_paired``, PBLF-BO against PBLF-RS seed by seed), by file stem, and the
#: formats each is written in.
TABLES: tuple[str, ...] = ("table_6_2", "table_6_2_paired", "table_B_1", "table_B_2")
#: The one table that is a measurement, not a result: what each search's training took, and on what
#: (:mod:`pblf.results.timings`); it differs between two runs of one config, every other table does not.
TIMINGS = "timings"
#: The reproduction tables (:mod:`pblf.results.reproduction`): the thesis's numbers beside the pipeline's, as a summary and
#: cell by cell.
REPRODUCTION_TABLES: tuple[str, ...] = ("reproduction", "reproduction_cells")
TABLE_FORMATS: tuple[str, ...] = ("csv", "md", "tex", "html")
#: The figures of the thesis, by id ("6.1"); a figure's file stem is :func:`figure_stem` of its id.
FIGURES: tuple[str, ...] = ("6.1", "6.2", "6.3", "6.4", "C.1", "C.2", "C.3", "C.4", "generalisation",
                             "hypergradient")
FIGURE_FORMATS: tuple[str, ...] = ("png", "pdf")


def table_label(name: str) -> str:
    """``table_6_2`` -> ``6.2``, as the thesis numbers it."""
    return name.removeprefix("table_").replace("_", ".")


def epochs_label(epochs: int) -> str:
    """A budget as the thesis writes it in tables and titles: "100 epochs" (and "1 epoch")."""
    return f"{epochs} epoch" + ("s" if epochs != 1 else "")


def figure_stem(figure: str) -> str:
    """``6.1`` -> ``figure_6_1``, the file stem of a figure."""
    return "figure_" + figure.replace(".", "_")


# ---------------------------------------------------------------------------------------------------- CSV columns

#: ``search/.../i<III>/history.csv``: what the proposer of an iteration reads. The GP needs the candidate and its
#: Top-1 validation (the required columns); low-fidelity search also reads which run it was, its status and its
#: validation curve (one number per epoch, space-separated).
HISTORY_REQUIRED: tuple[str, ...] = (*PHI_NAMES, "mode", "val_top1")
HISTORY_COLUMNS: tuple[str, ...] = ("iteration", "index", *HISTORY_REQUIRED, "status", "val_curve")
#: ``search/.../evaluations.csv``: every candidate a search evaluated, in order, with its run's identity (``search``:
#: which of the method's ``search.repeats`` searches it is).
#: ``source`` is ucb, ei, random, promoted or hypergradient; ``replaced`` says when an acquisition candidate replaced a too-close
#: maximiser (next-best, random); ``status`` is a run's, or ``promoted`` when a later iteration continued it;
#: ``epochs`` is the epoch the run reached (a diverged run's last, partial epoch included; a stopped run's rung);
#: ``seconds`` its training time so far (its epochs' share of their jobs' time, predecessors' included), measured on
#: ``measured_on`` (a GPU's or processor's name). PBLF-HG's row is the candidate its run learned, not the one it
#: started from.
EVALUATION_COLUMNS: tuple[str, ...] = (
    "budget_epochs", "method", "search", "iteration", "index", "source", "replaced", *PHI_NAMES, "mode", "status", "epochs",
    "val_top1", "test_top1", "seconds", "measured_on", "run",
)
#: ``tables/trials.csv`` (SPEC section 3): one row per repeat; every table is made from it. The first ten columns
#: are the contract any trials file meets (``pblf tables`` reads the thesis's own numbers from them); the rest say
#: which of the method's searches chose the candidate (``search``: 0 to ``search.repeats`` - 1; Standard's 0; a file
#: without the column is one search per method), what the meta-network was (its activation, the places of the
#: mode's bits) and what the search that chose the candidate cost (candidates trained, epochs spent; 0 for Standard). Every column is a result, the same on every
#: run of the config: the seconds it took are a measurement, in ``tables/timings.csv``.
TRIALS_REQUIRED: tuple[str, ...] = ("budget_epochs", "method", "seed", "test_top1", "val_top1", *PHI_NAMES, "mode")
TRIALS_COLUMNS: tuple[str, ...] = (*TRIALS_REQUIRED, "search", "activation", "places", "search_candidates",
                                   "search_epochs")
