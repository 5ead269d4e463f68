"""Filter forms whose `size` field is how many rows a page shows."""

from __future__ import annotations


class PageSized:
    """Mixed into a filter form with a `size` field, before forms.Form.

    A bound form ignores initial values: read from a URL without a size, the page-size
    menu would show its first choice while the page holds DEFAULT_PAGE_SIZE rows. So an
    absent size is read as that default.
    """

    DEFAULT_PAGE_SIZE: int

    def __init__(self, data=None, *args, **kwargs) -> None:
        if data is not None and not data.get("size"):
            data = data.copy()
            data["size"] = str(self.DEFAULT_PAGE_SIZE)
        super().__init__(data, *args, **kwargs)

    def page_size(self) -> int:
        return self.cleaned_data["size"] or self.DEFAULT_PAGE_SIZE
