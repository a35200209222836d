"""Next-link repair: what a pull does with next links that cannot be used as given. Pure state.

Real partners send next links that lead nowhere useful: `https://` on a server that speaks plain
http, the wrong role in the path, enum names in the path, `date_from=None` for unset filters.
A link is repaired, never followed blindly, when it leads to another scheme, host or port (no
request goes there: the token stays home), when it does not parse, or when following it answers
400, 404 or 422. Repairing means reading on by offset on the endpoint's own URL, with the
window's own filters, from where the chain stands; the page driver checks that the partner honours
`offset` (a partner answering every offset with its first page ends the window with a defined
error, never a loop). A link that works is followed as given, whatever its path.

Once a followed link has failed, the links of that partner are not tried again in this pull:
every further page is read by offset (saving a failing request per page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LinkRepairSetting = Literal["auto", "off"]


@dataclass(slots=True)
class LinkRepair:
    """One pull's (one partner module's) link repair: the setting, and what it did."""

    enabled: bool = True
    links_unusable: bool = False  # a followed link failed: read by offset from now on
    repairs: int = 0  # next links replaced by an offset URL
    first_repaired: str | None = None  # the first one, redacted, for the summary warning
    links_without_rel: int = 0  # next links taken from a lone `Link: <url>` without rel

    @classmethod
    def from_setting(cls, setting: LinkRepairSetting) -> LinkRepair:
        """`auto` repairs; `off` keeps refusing (exit 5) as before link repair existed."""
        return cls(enabled=setting == "auto")

    def repaired(self, link: str | None) -> None:
        """A next link (`link`, redacted, when there was one to show) was replaced."""
        self.repairs += 1
        if self.first_repaired is None and link is not None:
            self.first_repaired = link
