"""FastAPI dependencies, as ``Annotated`` aliases.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a
thread hand-off per request that cost /v1/calculate most of its throughput.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.state import Services
from service.domain.access import Principal

_bearer = HTTPBearer(auto_error=False, description="API key: Authorization: Bearer <key>")


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    header = None if credentials is None else f"{credentials.scheme} {credentials.credentials}"
    return services.keyring.authenticate(header)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_admin(principal: PrincipalDep) -> Principal:
    principal.ensure_admin()
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]
