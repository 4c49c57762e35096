"""Territory codes: ISO 3166-1 alpha-2 (from pycountry's copy of the ISO list) or Worldwide."""

from __future__ import annotations

from functools import cache

WORLDWIDE = "Worldwide"


@cache
def iso_codes() -> frozenset[str]:
    import pycountry

    return frozenset(country.alpha_2 for country in pycountry.countries)


def is_territory(code: object) -> bool:
    return code == WORLDWIDE or (isinstance(code, str) and code in iso_codes())
