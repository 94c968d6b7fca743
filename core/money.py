"""Money as an integer count of the currency's minor unit, with its ISO 4217 code.

Never a float: ``Money.parse("1026.55", "USD")`` is 102655 cents; VND and IRR have no minor
unit, so ``Money.parse("150000", "VND")`` is 150000 đồng. Store the two parts in two columns,
``BigInteger`` and ``String(3)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@functools.cache
def minor_digits(currency: str) -> int:
    """How many decimal digits the currency's minor unit has (VND 0, USD 2, KWD 3)."""
    from babel.numbers import get_currency_precision, list_currencies

    code = currency.upper()
    if code not in list_currencies():
        raise ValueError(f"unknown currency {currency!r}")
    return get_currency_precision(code)


@dataclass(frozen=True, order=True)
class Money:
    """An amount in minor units of ``currency``."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(
                f"money amounts are whole minor units, not {type(self.amount).__name__}"
            )
        minor_digits(self.currency)
        object.__setattr__(self, "currency", self.currency.upper())

    @classmethod
    def parse(cls, value: str | int | Decimal, currency: str) -> Money:
        """Money from a decimal string or number in major units; floats are refused.

        More decimal places than the currency has raise ``ValueError``.
        """
        if isinstance(value, float):
            raise TypeError("floats are not accepted for money; pass a string or Decimal")
        try:
            amount = Decimal(str(value).strip().replace(",", "").replace("_", ""))
        except InvalidOperation:
            raise ValueError(f"{value!r} is not an amount") from None
        if not amount.is_finite():
            raise ValueError(f"{value!r} is not an amount")
        scaled = amount.scaleb(minor_digits(currency))
        if scaled != scaled.to_integral_value():
            raise ValueError(
                f"{value!r} has more decimals than {currency.upper()} allows "
                f"({minor_digits(currency)})"
            )
        return cls(int(scaled), currency)

    def to_decimal(self) -> Decimal:
        """The amount in major units, exactly."""
        return Decimal(self.amount).scaleb(-minor_digits(self.currency))

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other!r}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def format(self, locale: str = "en") -> str:
        """The amount as people of ``locale`` write it (``150.000 ₫`` in Vietnamese)."""
        from babel.numbers import format_currency

        return format_currency(self.to_decimal(), self.currency, locale=locale)
