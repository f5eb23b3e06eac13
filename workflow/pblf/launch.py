"""``pblf run``: the pipeline under Snakemake, started the way a newcomer would want it started.

Snakemake itself answers a mistyped ``--configfile presets/dem.yaml`` with a 27-line traceback, and a Ctrl-C with a
hundred lines of ``KeyboardInterrupt`` tracebacks (its own, its jobs', the executor plugin's). ``pblf run demo``
names its configs by preset (``demo`` is ``presets/demo.yaml``; a path works too), refuses a name that is neither in
one line with the presets that exist and the nearest one, validates the merged config before Snakemake starts, and
passes everything after ``--`` to Snakemake unchanged. It forwards Snakemake's console output as it comes; after a
Ctrl-C it lets Snakemake stop its jobs (each training run keeps its checkpoint) but shows none of the tracebacks,
only one line that says how to continue.
"""

from __future__ import annotations

import difflib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from pblf.core.config import load_config
from pblf.core.errors import EXIT_INTERRUPTED, INTERRUPTED, ConfigError, UserError
from pblf.core.layout import BASE_CONFIG
from pblf.core.provenance import Outcome

PRESETS = Path("presets")
#: Snakemake options that already say how many cores or jobs to use (or a profile that may).
CORE_OPTIONS = ("--cores", "-c", "--jobs", "-j", "--profile", "--workflow-profile")


def preset_names(presets: Path = PRESETS) -> list[str]:
    return sorted(path.stem for path in presets.glob("*.yaml"))


def resolve(names: list[str], presets: Path = PRESETS) -> list[Path]:
    """Each of ``names`` as a config file: a path to one, or the name of a preset (``demo`` -> presets/demo.yaml)."""
    files = []
    for name in names:
        path, preset = Path(name), presets / f"{name}.yaml"
        if path.is_file():
            files.append(path)
        elif preset.is_file():
            files.append(preset)
        else:
            known = preset_names(presets)
            near = difflib.get_close_matches(Path(name).stem, known, n=1)
            hint = f"; did you mean {near[0]}?" if near else ""
            raise ConfigError(f"{name!r} is neither a config file nor a preset (presets: {', '.join(known)}){hint}")
    return files


def snakemake_command(files: list[Path], snakemake_args: list[str]) -> list[str]:
    """The Snakemake command line: the config files, all cores unless the arguments say otherwise, the rest as
    given."""
    binary = Path(sys.executable).parent / "snakemake"
    found = str(binary) if binary.is_file() else shutil.which("snakemake")
    if found is None:
        raise UserError("snakemake is not installed in this environment: run `make install` (or pip install -e .)")
    cores = [] if any(arg.split("=")[0] in CORE_OPTIONS for arg in snakemake_args) else ["--cores", "all"]
    configs = ["--configfile", *map(str, files)] if files else []
    return [found, *cores, *configs, *snakemake_args]


def forward(command: list[str]) -> int:
    """Run ``command``, copying its console output (stdout and stderr together) to ours as it comes, until a
    Ctrl-C; from then on its output is read and dropped while it stops, and one line says what happened."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert process.stdout is not None
    interrupted = False
    while True:
        try:
            chunk = os.read(process.stdout.fileno(), 65536)
        except KeyboardInterrupt:
            interrupted = True
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave Snakemake's jobs behind
            continue
        if not chunk:
            break
        if not interrupted:
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    code = process.wait()
    if interrupted:
        print(f"pblf run: {INTERRUPTED}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


def stage_run(configs: list[str], snakemake_args: list[str]) -> Outcome:
    """``pblf run [PRESET ...] [-- SNAKEMAKE ARGS]``: the pipeline on config.yaml and the presets or files given."""
    if not Path("Snakefile").is_file():
        raise UserError(f"no Snakefile in {Path.cwd()}: run pblf run in the repository's root")
    files = [file for file in resolve(configs) if file.resolve() != Path(BASE_CONFIG).resolve()]
    load_config([BASE_CONFIG, *files])  # a bad value is one line here, before Snakemake starts
    return Outcome(exit_code=forward(snakemake_command(files, snakemake_args)))
