"""A tenant's PII settings (`PiiSettings`): checked when stored, compiled for the scrubber."""

from __future__ import annotations

import phonenumbers

from flywheel.contracts.pii import MAX_PHONE_REGIONS, OPTIONAL_KINDS, PiiSettings

# Region codes libphonenumber has metadata for ("001" and other non-geographic
# entities are not regions a national number could be written in).
PHONE_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)


class PiiPolicy:
    """What the detectors read: the phone regions, in order, and the optional kinds switched on."""

    __slots__ = ("phone_regions", "optional_kinds")

    def __init__(self, phone_regions: tuple[str, ...], optional_kinds: frozenset[str]) -> None:
        self.phone_regions = phone_regions
        self.optional_kinds = optional_kinds

    @classmethod
    def build(cls, settings: PiiSettings) -> PiiPolicy:
        """Compile stored settings, keeping only what `validate_settings` accepts today.

        A region a newer libphonenumber dropped, or a kind since renamed,
        must not stop ingestion: it is skipped (an empty region list falls
        back to the defaults, so a bad list never turns phones off).
        """
        regions = tuple(dict.fromkeys(r.upper() for r in settings.phone_regions if r.upper() in PHONE_REGIONS))
        kinds = frozenset(k for k in settings.optional_kinds if k in OPTIONAL_KINDS)
        return cls(regions or DEFAULT_POLICY.phone_regions, kinds)


DEFAULT_POLICY = PiiPolicy(tuple(PiiSettings().phone_regions), frozenset())


def validate_settings(settings: PiiSettings) -> None:
    """Raise ValueError naming the first bad entry, as ``phone_regions[2]: ...``."""
    if not settings.phone_regions:
        raise ValueError("phone_regions: name at least one region (the defaults: leave the field out)")
    if len(settings.phone_regions) > MAX_PHONE_REGIONS:
        raise ValueError(f"phone_regions: at most {MAX_PHONE_REGIONS} entries")
    for i, region in enumerate(settings.phone_regions):
        if region not in PHONE_REGIONS:
            raise ValueError(f"phone_regions[{i}]: {region!r} is not a region code libphonenumber knows "
                             "(ISO 3166-1 alpha-2 in capitals, e.g. \"DE\", \"JP\")")
    for i, kind in enumerate(settings.optional_kinds):
        if kind not in OPTIONAL_KINDS:
            raise ValueError(f"optional_kinds[{i}]: {kind!r} is not an optional kind "
                             f"(one of {', '.join(map(repr, OPTIONAL_KINDS))})")
