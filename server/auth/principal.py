"""The caller of a request, as resolved from its API key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias
from uuid import UUID

from litestar.di import NamedDependency

from flywheel.contracts.tenants import Scope

# What each scope also grants.
IMPLIED = {
    Scope.ADMIN: {Scope.ADMIN, Scope.WRITE, Scope.READ, Scope.INGEST},
    Scope.WRITE: {Scope.WRITE, Scope.READ},
    Scope.READ: {Scope.READ},
    Scope.INGEST: {Scope.INGEST},
}


@dataclass(frozen=True)
class Principal:
    tenant_id: UUID
    key_id: UUID
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return any(scope in IMPLIED[s] for s in self.scopes)


# Handler parameter type for the caller: `principal: Caller`. Litestar injects
# it by name from the app-level `principal` dependency.
Caller: TypeAlias = NamedDependency[Principal]
