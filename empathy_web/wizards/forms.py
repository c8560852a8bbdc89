"""The security wizard's input: Python source, pasted or uploaded as a .py file."""

from __future__ import annotations

from typing import Any

from django import forms

from memory.wizards.security_analysis_wizard import DEFAULT_MAX_CODE_BYTES, SUPPORTED_LANGUAGES

#: The most source the page analyses at once: the wizard's own limit, in UTF-8 bytes.
MAX_CODE_BYTES = DEFAULT_MAX_CODE_BYTES

LANGUAGE_CHOICES = [("python", "Python")]


def _size(n: int) -> str:
    return f"{n:,} bytes"


def normalise_newlines(text: str) -> str:
    """Python reads \\r\\n and a lone \\r as line ends too; one style keeps the line
    numbers of the listing and of the findings the same, and the cache key stable."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class SecurityWizardForm(forms.Form):
    """Exactly one of ``code`` and ``upload``; cleans to ``source`` (the text to analyse,
    newlines normalised), ``filename`` ("" for pasted code) and ``language``."""

    code = forms.CharField(
        required=False,
        strip=False,  # leading blank lines count: findings are reported by line number
        label="Python code",
        widget=forms.Textarea(
            attrs={"rows": 16, "cols": 100, "spellcheck": "false", "class": "code-input"}
        ),
    )
    upload = forms.FileField(
        required=False,
        label="or upload a .py file",
        help_text=f"UTF-8, at most {MAX_CODE_BYTES // 1024} KB",
        widget=forms.ClearableFileInput(attrs={"accept": ".py,text/x-python"}),
    )
    # A free field shown as a select: a language the wizard does not know gets an error
    # that names it, rather than "select a valid choice".
    language = forms.CharField(
        required=False,
        initial="python",
        widget=forms.Select(choices=LANGUAGE_CHOICES),
        label="Language",
    )

    def clean_language(self) -> str:
        language = self.cleaned_data["language"].strip().lower() or "python"
        if language not in SUPPORTED_LANGUAGES:
            supported = ", ".join(label for _, label in LANGUAGE_CHOICES)
            raise forms.ValidationError(
                f"The security wizard analyses {supported} only; it cannot analyse {language!r}."
            )
        return language

    def clean_upload(self) -> tuple[str, str] | None:
        """The uploaded file as (name, text), or None."""
        upload = self.cleaned_data.get("upload")
        if not upload:
            return None
        name = upload.name or "upload"
        if not name.lower().endswith(".py"):
            raise forms.ValidationError(
                f"“{name}” is not a Python file: choose a file whose name ends in .py."
            )
        if upload.size > MAX_CODE_BYTES:
            raise forms.ValidationError(
                f"“{name}” is {_size(upload.size)}; the limit is {_size(MAX_CODE_BYTES)}. "
                "Split it and analyse it in parts."
            )
        data = upload.read(MAX_CODE_BYTES + 1)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise forms.ValidationError(
                f"“{name}” is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} "
                "cannot be decoded. Save the file as UTF-8 and upload it again."
            ) from None
        return name, text

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        code = cleaned.get("code") or ""
        upload = cleaned.get("upload")
        if upload is not None and code.strip():
            raise forms.ValidationError("Paste code or upload a file, not both.")
        filename, source = upload if upload is not None else ("", code)
        source = normalise_newlines(source)
        if not source.strip():
            if upload is not None:
                self.add_error("upload", f"“{filename}” is empty: there is no code to analyse.")
            else:
                self.add_error("code", "Paste some Python code, or upload a .py file.")
            return cleaned
        size = len(source.encode("utf-8", "surrogatepass"))
        if size > MAX_CODE_BYTES:
            self.add_error(
                "upload" if upload is not None else "code",
                f"The code is {_size(size)}; the limit is {_size(MAX_CODE_BYTES)}. "
                "Split it and analyse it in parts.",
            )
            return cleaned
        cleaned["source"] = source
        cleaned["filename"] = filename
        return cleaned
