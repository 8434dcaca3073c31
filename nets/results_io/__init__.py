"""Results I/O at the bottom of the import graph: where results live, atomic writes, JSON,
damaged files moved aside, provenance, and the paper's reference numbers.

It imports nothing from ``nets`` but itself, so every other module (experiments, plots,
report, the trainer, the data cache, the CLI) can use it without an import cycle; importing
it runs no subprocess (git is asked only when a results file's metadata is written).

- :mod:`nets.results_io.atomic`: :func:`atomic_write` and its text / bytes / ``torch.save`` /
  figure forms, the one atomic-write implementation, honouring the umask;
- :mod:`nets.results_io.json_form`: plain JSON types (:func:`to_jsonable`), rounding, the layout files
  are written in (:func:`dumps`);
- :mod:`nets.results_io.files`: results paths, JSON (:func:`write_json`, :func:`read_json`),
  :func:`read_results`, which moves a damaged file aside (:func:`peek_results` leaves it);
- :mod:`nets.results_io.reading`: a results file that parses but lacks what its reader needs, named in
  one line (:func:`reading`);
- :mod:`nets.results_io.torch_files`: ``torch.load(weights_only=True)`` with one-line reasons,
  :func:`load_torch_file` (moves a damaged checkpoint aside) and :func:`read_torch_file` (leaves it);
- :mod:`nets.results_io.provenance`: versions, CPU, git commit, command line, ``meta`` blocks;
- :mod:`nets.results_io.numerics`: how float32 runs on CUDA (TF32, cuDNN's determinism), as recorded;
- :mod:`nets.results_io.paper`: the paper's Table 1;
- :mod:`nets.results_io.seal`: the SHA-256 every results file carries of its content, so a file edited
  since its run wrote it is refused (:func:`read_json`) rather than read as the run's;
- :mod:`nets.results_io.slim` and :mod:`nets.results_io.reround` (command-line tools, not
  imported here): make committed results files smaller without changing a number;
  :mod:`nets.results_io.add_seals` (likewise) seals files written before seals.
"""

from nets.results_io.atomic import (  # noqa: F401
    ResultsWriteError,
    atomic_torch_save,
    atomic_write,
    check_file,
    check_folder,
    file_mode,
    folder_lock,
    make_folder,
    palette_png,
    save_figure_file,
    write_bytes,
    write_text,
)
from nets.results_io.json_form import dumps, rounded, to_jsonable  # noqa: F401
from nets.results_io.files import (  # noqa: F401
    EXPERIMENTS,
    REPORT_EXPERIMENTS,
    RESULTS_ROOT,
    ResultsFileError,
    WouldTrain,
    checkpoint_dir,
    checkpoints_in,
    drawing_marker,
    examine_results,
    figure_dir,
    group_sections,
    load_results,
    peek_results,
    move_aside,
    out_dir,
    precision_dir,
    read_json,
    read_results,
    result_groups,
    result_path,
    saved_checkpoints_text,
    sha256_file,
    write_json,
)
from nets.results_io.reading import DEBUG, READ_ERRORS, reading, unreadable  # noqa: F401
from nets.results_io.torch_files import load_refusal, load_torch_file, one_line, quiet_torch_load, read_torch_file  # noqa: F401
from nets.results_io.paper import PAPER_CITATION, PAPER_TABLE1, PAPER_TABLE1_STD, PAPER_DATASET, DATASET_TITLES, paper_table1_for, recorded_dataset  # noqa: F401
from nets.results_io.numerics import NEW_TF32_API, cuda_float32  # noqa: F401
from nets.results_io.provenance import (  # noqa: F401
    PROVENANCE_FIELDS,
    GitUnanswered,
    code_version,
    command_line,
    committed_files,
    cpu_info,
    folder_dirty,
    git_commit,
    metadata,
    mixed_settings,
    profile_differences,
    provenance,
    recorded_precision,
    result_sittings,
    run_provenance,
    trained_elsewhere,
    versions,
    without_sitting,
)

__all__ = [
    "ResultsWriteError", "atomic_torch_save", "atomic_write", "check_file", "check_folder", "file_mode", "folder_lock",
    "make_folder", "palette_png", "save_figure_file", "write_bytes",
    "write_text",
    "EXPERIMENTS", "REPORT_EXPERIMENTS", "RESULTS_ROOT", "ResultsFileError", "WouldTrain", "checkpoint_dir", "checkpoints_in", "dumps",
    "drawing_marker",
    "figure_dir",
    "group_sections", "load_results", "load_torch_file", "peek_results", "read_torch_file", "load_refusal",
    "one_line", "quiet_torch_load",
    "DEBUG", "READ_ERRORS", "reading", "unreadable",
    "move_aside", "out_dir", "precision_dir", "saved_checkpoints_text", "read_json", "read_results", "result_groups", "result_path", "to_jsonable", "write_json",
    "PAPER_CITATION", "PAPER_TABLE1", "PAPER_TABLE1_STD", "PAPER_DATASET", "DATASET_TITLES", "paper_table1_for",
    "recorded_dataset",
    "NEW_TF32_API", "cuda_float32",
    "PROVENANCE_FIELDS", "code_version", "command_line", "committed_files", "cpu_info", "folder_dirty", "git_commit",
    "metadata", "mixed_settings", "profile_differences", "provenance", "recorded_precision", "result_sittings",
    "run_provenance",
    "versions",
    "trained_elsewhere",
    "without_sitting",
]
