"""Small targets for fault tests: a module-level function, a method, a coroutine."""

from __future__ import annotations


def ping(x: int = 1) -> int:
    return x


async def aping(x: int = 1) -> int:
    return x


class Service:
    def call(self, x: int) -> int:
        return x * 2

    @staticmethod
    def static(x: int) -> int:
        return x + 1

    @classmethod
    def klass(cls, x: int) -> str:
        return f"{cls.__name__}:{x}"


def uses_ping() -> int:
    return ping(5)


class Child(Service):
    """Inherits `call`: patching it must not leave an attribute behind."""
