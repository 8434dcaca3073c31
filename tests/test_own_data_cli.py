"""``python -m nets own-data``'s options: ``--profile smoke`` for a try in seconds, each flag given
overriding the profile, and every flag's bad value refused by argparse in one line naming it."""

from __future__ import annotations

import pytest

from nets import own_data_cli
from nets.experiments.own_data import OwnDataSettings

REQUIRED = ["--model", "m:f", "--data", "d.pt", "--groups", "r4", "--out", "o"]


def settings(*flags: str) -> OwnDataSettings:
    parser = own_data_cli.build_parser()
    return own_data_cli.settings_of(parser.parse_args([*REQUIRED, *flags]), parser)


def test_no_profile_gives_the_documented_defaults():
    assert settings() == OwnDataSettings()


def test_the_smoke_profile_is_one_epoch_two_seeds_one_nu_and_few_images():
    s = settings("--profile", "smoke")
    assert (s.epochs, s.seeds, s.nu_grid, s.n_si_samples, s.n_sigma_samples) == (1, (0, 1), (10.0,), 8, 8)


def test_a_flag_given_overrides_the_profile_and_the_rest_stays_the_profiles():
    s = settings("--profile", "smoke", "--epochs", "3", "--seeds", "4", "5", "6", "--ig-steps", "20")
    assert (s.epochs, s.seeds, s.ig_steps) == (3, (4, 5, 6), 20)
    assert (s.nu_grid, s.n_si_samples, s.n_sigma_samples) == ((10.0,), 8, 8)


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    (["--ig-steps", "x"], "argument --ig-steps: 'x' is not an integer"),
    (["--n-steps", "20"], "--n-steps is another command's option: own-data names it --ig-steps"),
    (["--sigma-samples", "-2"], "argument --sigma-samples: must be at least 1, got -2"),
    (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (["--lr", "nan"], "argument --lr: must be a finite number > 0, got nan"),
    (["--seeds", "1", "1"], "--seeds must be distinct, got [1, 1]"),
    (["--nu-grid", "-1"], "--nu-grid needs positive finite values, got -1.0"),
    (["--profile", "paper"], "argument --profile: invalid choice: 'paper'"),
])
def test_a_bad_value_is_one_usage_line_naming_the_flag(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        settings(*flags)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("python -m nets own-data: error: ")
    assert message in err
