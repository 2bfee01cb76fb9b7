"""Third-party deprecation notices are kept out of the output; everything else shows."""

from __future__ import annotations

import io
import warnings

import pytest

from memberscore import console


def test_noisy_deprecations_are_hidden_and_others_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
        out.write(f"{category.__name__}: {message}\n")

    monkeypatch.setattr(warnings, "showwarning", show)
    console.quiet_libraries()
    console.quiet_libraries()  # idempotent: wraps once

    site = "/venv/lib/python3.11/site-packages"
    warnings.showwarning(DeprecationWarning("old"), DeprecationWarning, f"{site}/ibis/a.py", 1)
    warnings.showwarning(FutureWarning("soon"), FutureWarning, f"{site}/mlflow/b.py", 2)
    warnings.showwarning(UserWarning("look"), UserWarning, f"{site}/mlflow/b.py", 3)
    warnings.showwarning(DeprecationWarning("ours"), DeprecationWarning, "/src/features/x.py", 4)

    assert out.getvalue() == "UserWarning: look\nDeprecationWarning: ours\n", out.getvalue()
