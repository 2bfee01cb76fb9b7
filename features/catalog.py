"""The declared member features: name, dtype, family and a description stating units.

Declarations only. `features.snapshot.compute_snapshot` returns exactly these columns (plus
`member_id` and `as_of`) with these dtypes; the Feast repo builds one feature view per family
from `FAMILIES`. Names are stable: models, stage rules and actions refer to them.

Conventions: every feature is computed as of a cutoff C from rows strictly before C. Day counts
are fractional days (86 400 s) between two instants, as float. Money is in the dataset currency;
"net spend" is purchase `amount` minus refunded `amount` (returns). A window "_30d" covers
[C − 30 days, C). "Purchase" means an order row with `is_return = false`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dtype = Literal["float", "int", "string", "bool"]
PandasDtype = Literal["float64", "Int64", "string", "boolean"]

PANDAS_DTYPES: dict[Dtype, PandasDtype] = {
    "float": "float64",
    "int": "Int64",
    "string": "string",
    "bool": "boolean",
}


@dataclass(frozen=True)
class Feature:
    """One per-member feature of the snapshot."""

    name: str
    dtype: Dtype
    family: str
    description: str


def _family(family: str, rows: tuple[tuple[str, Dtype, str], ...]) -> tuple[Feature, ...]:
    return tuple(Feature(name, dtype, family, text) for name, dtype, text in rows)


def _windows(
    stem: str, dtype: Dtype, text: str, days: tuple[int, ...]
) -> tuple[tuple[str, Dtype, str], ...]:
    """One (name, dtype, description) row per window length in `days`."""
    return tuple((f"{stem}_{d}d", dtype, f"{text} in the last {d} days") for d in days)


RFM = _family(
    "rfm",
    (
        ("recency_days", "float", "Days since the last purchase; null if none."),
        ("frequency", "int", "Purchases (non-return orders), all time (count)."),
        *_windows("frequency", "int", "Purchases (count)", (30, 90, 365)),
        ("monetary", "float", "Net spend, all time: purchases minus refunds (currency)."),
        *_windows(
            "monetary", "float", "Net spend, purchases minus refunds (currency),", (30, 90, 365)
        ),
        ("avg_order_value", "float", "Mean purchase amount, all time (currency); null if none."),
        *_windows(
            "avg_order_value",
            "float",
            "Mean purchase amount (currency; null if none)",
            (30, 90, 365),
        ),
        ("tenure_days", "float", "Days since registration."),
        ("days_since_first_order", "float", "Days since the first purchase; null if none."),
        ("first_order_amount", "float", "Amount of the first purchase (currency); null if none."),
        ("mean_gap_days", "float", "Mean days between consecutive purchases; null if < 2."),
        ("std_gap_days", "float", "Sample std of days between purchases; null if < 3 purchases."),
        (
            "days_overdue",
            "float",
            "recency_days minus mean_gap_days (days; negative = not yet due); null if < 2.",
        ),
        (
            "discount_share",
            "float",
            "Discount / (amount + discount) over all purchases (0-1); null if none.",
        ),
        ("return_rate", "float", "Refund rows / purchases, all time (ratio); null if none."),
        ("online_share", "float", "Share of purchases in the online channel (0-1); null if none."),
        ("store_share", "float", "Share of purchases in stores (0-1); null if none."),
        ("app_share", "float", "Share of purchases in the app (0-1); null if none."),
    ),
)

BEHAVIOUR = _family(
    "behaviour",
    (
        *_windows("logins", "int", "Login events (count)", (30, 90)),
        *_windows("product_views", "int", "Product view events (count)", (30, 90)),
        *_windows("cart_adds", "int", "Add-to-cart events (count)", (30, 90)),
        (
            "cart_abandon_rate_30d",
            "float",
            "Share of add-to-cart events in the last 30 days with no purchase within 1 day "
            "after them (0-1); null if no cart adds.",
        ),
        (
            "email_open_rate_90d",
            "float",
            "Email opens / emails sent in the last 90 days, capped at 1; null if none sent.",
        ),
        (
            "email_click_rate_90d",
            "float",
            "Email clicks / emails sent in the last 90 days, capped at 1; null if none sent.",
        ),
        (
            "sms_click_rate_90d",
            "float",
            "SMS clicks / SMS sent in the last 90 days, capped at 1; null if none sent.",
        ),
        (
            "contact_response_rate_90d",
            "float",
            "Contacts sent in the last 90 days with a response before the cutoff / contacts "
            "sent (0-1); null if none sent.",
        ),
        *_windows("coupon_claims", "int", "Coupon claim events (count)", (90,)),
        *_windows("coupon_redemptions", "int", "Purchases with a coupon (count)", (90,)),
        ("points_earned", "float", "Loyalty points earned, all time (points)."),
        ("points_redeemed", "float", "Loyalty points redeemed, all time (points)."),
        ("points_balance", "float", "Points earned minus points redeemed, all time (points)."),
        *_windows("service_contacts", "int", "Service contact events (count)", (90,)),
        *_windows("contacts", "int", "Marketing contacts received (count)", (30, 90)),
        *_windows("events", "int", "Engagement events, all types but tier_change (count)", (30,)),
        (
            "days_since_last_login",
            "float",
            "Days since the last login event; null if none.",
        ),
        (
            "days_since_last_activity",
            "float",
            "Days since the last engagement event or order; null if none.",
        ),
        (
            "activity_trend",
            "float",
            "ln((1 + engagement events in the last 30 days) / (1 + those in the 30 days "
            "before)); 0 = flat, > 0 rising.",
        ),
    ),
)

PROFILE = _family(
    "profile",
    (
        ("acquisition_channel", "string", "Channel the member was acquired through."),
        ("region", "string", "Region of the member."),
        ("gender", "string", "female, male, other or unknown."),
        ("age_years", "int", "Cutoff year minus birth year (years); null if unknown."),
        ("age_band", "string", "Age band: under_18, 18_24, ..., 65_plus or unknown."),
        ("consent_marketing", "bool", "Member consents to marketing contacts."),
        ("consent_personalization", "bool", "Member consents to personalisation."),
        ("is_derived", "bool", "The member row was derived from orders, not exported."),
        ("growth_value", "float", "Net spend over the 365 days before the cutoff (currency)."),
        ("tier", "string", "Tier held by growth_value under the configured thresholds."),
        ("tier_rank", "int", "Position of tier among the thresholds (0 = lowest)."),
        ("next_tier", "string", "The tier above the current one; null at the top."),
        (
            "distance_to_next_tier",
            "float",
            "Growth value still needed for next_tier (currency); null at the top.",
        ),
    ),
)

LIFECYCLE = _family(
    "lifecycle",
    (
        ("has_ordered", "bool", "At least one purchase before the cutoff."),
        ("orders_count_all", "int", "Purchases, all time (count; equals frequency)."),
        ("days_since_registration", "float", "Days since registration (equals tenure_days)."),
        (
            "days_to_first_order",
            "float",
            "Days from registration to the first purchase; null if none.",
        ),
        ("is_active_90d", "bool", "A purchase or engagement event in the last 90 days."),
        (
            "recency_bucket",
            "string",
            "Days since last purchase: 0_30, 31_90, 91_180, 181_365, 365_plus or none.",
        ),
        ("frequency_prev_90d", "int", "Purchases 90 to 180 days before the cutoff (count)."),
        (
            "last_gap_days",
            "float",
            "Days between the last two purchases; null if < 2.",
        ),
        ("max_gap_days", "float", "Longest gap between consecutive purchases (days); null if < 2."),
        ("won_back", "bool", "The last purchase came after a gap of at least 180 days."),
    ),
)

SEGMENT = _family(
    "segment",
    (
        ("r_score", "int", "Recency quintile 1-5 among buyers (5 = most recent); null if none."),
        ("f_score", "int", "Frequency quintile 1-5 among buyers (5 = most); null if none."),
        ("m_score", "int", "Monetary quintile 1-5 among buyers (5 = most); null if none."),
        ("rfm_cell", "string", "R, F and M scores as three digits, e.g. 545; null if none."),
        ("segment", "string", "Named RFM segment, e.g. champions, at_risk or no_purchase."),
    ),
)

TAGS = _family(
    "tags",
    (
        ("tags", "string", "Every tag that holds, comma-separated, sorted; empty if none."),
        ("tag_discount_seeker", "bool", "discount_share at or above the threshold."),
        ("tag_store_first", "bool", "store_share at or above the threshold."),
        ("tag_online_first", "bool", "online_share at or above the threshold."),
        ("tag_app_first", "bool", "app_share at or above the threshold."),
        ("tag_lapsed_vip", "bool", "Top tier or top-decile spend, and overdue."),
        ("tag_new_member", "bool", "Registered within the new-member window."),
        ("tag_high_returner", "bool", "return_rate at or above the threshold."),
        ("tag_points_hoarder", "bool", "Large points balance, little redeemed."),
        ("tag_email_engaged", "bool", "email_open_rate_90d at or above the threshold."),
        ("tag_dormant_browser", "bool", "Recent engagement events but no recent purchase."),
    ),
)

BTYD = _family(
    "btyd",
    (
        (
            "btyd_p_alive",
            "float",
            "P(still a customer) at the cutoff from a Pareto/NBD (or BG/NBD) model fitted on "
            "every buyer as of the cutoff (0-1); null if no purchase.",
        ),
        (
            "btyd_expected_purchases_90d",
            "float",
            "BTYD expected purchases in the 90 days from the cutoff (count); null if none.",
        ),
        (
            "btyd_p_no_purchase_90d",
            "float",
            "BTYD probability of no purchase in the 90 days from the cutoff (0-1); null if none.",
        ),
        (
            "btyd_expected_spend_365d",
            "float",
            "BTYD expected purchases in 365 days × Gamma-Gamma expected order value (currency); "
            "null if no purchase.",
        ),
        (
            "btyd_expected_order_value",
            "float",
            "Gamma-Gamma expected value of the next purchase (currency); null if no purchase.",
        ),
        (
            "btyd_days_to_next_order",
            "float",
            "Median days from the cutoff to the next purchase if still a customer (days); "
            "null if no purchase.",
        ),
    ),
)

FAMILIES: dict[str, tuple[Feature, ...]] = {
    "rfm": RFM,
    "behaviour": BEHAVIOUR,
    "profile": PROFILE,
    "lifecycle": LIFECYCLE,
    "segment": SEGMENT,
    "tags": TAGS,
    "btyd": BTYD,
}


def all_features() -> tuple[Feature, ...]:
    """Every feature, family by family in `FAMILIES` order."""
    return tuple(f for family in FAMILIES.values() for f in family)


def feature_names() -> list[str]:
    """Names of every feature, in catalog order (the snapshot's column order after the keys)."""
    return [f.name for f in all_features()]


def feature(name: str) -> Feature:
    """The feature called `name`, or a KeyError naming it."""
    for f in all_features():
        if f.name == name:
            return f
    raise KeyError(f"no feature {name!r} in the catalog")
