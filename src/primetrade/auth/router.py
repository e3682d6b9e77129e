"""Registration, sign-in, token refresh and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.accounts import service as accounts_service
from primetrade.accounts.schemas import Accepted
from primetrade.auth import service
from primetrade.auth.dependencies import CurrentPrincipal
from primetrade.auth.schemas import LoginRequest, RefreshRequest, RegisterRequest, TokenPair
from primetrade.kit.errors import problem_responses
from primetrade.kit.ratelimit import client_address
from primetrade.runtime import Runtime, RuntimeDep, SessionDep
from primetrade.users.schemas import UserRead

router = APIRouter(prefix="/auth", tags=["auth"])
UserAgent = Annotated[str | None, Header(include_in_schema=False)]


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead | Accepted,
    responses={
        202: {"model": Accepted, "description": "With email verification on: check your mail."},
        **problem_responses(409, 422, 429),
    },
)
async def register(
    body: RegisterRequest, response: Response, session: SessionDep, runtime: RuntimeDep
) -> object:
    """Create an account (201), or with email verification on, always 202."""
    user = await accounts_service.register(session, runtime, body)
    if user is None:
        response.status_code = status.HTTP_202_ACCEPTED
        return Accepted()
    return user


@router.post("/login", response_model=TokenPair, responses=problem_responses(401, 403, 422, 429))
async def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user_agent: UserAgent = None,
) -> TokenPair:
    """Exchange email and password for an access and a refresh token."""
    return await sign_in(request, session, runtime, body.email, body.password, user_agent)


@router.post("/token", response_model=TokenPair, responses=problem_responses(401, 403, 422, 429))
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user_agent: UserAgent = None,
) -> TokenPair:
    """OAuth2 password flow (form-encoded), for the interactive docs' Authorize button."""
    return await sign_in(request, session, runtime, form.username, form.password, user_agent)


async def sign_in(
    request: Request,
    session: AsyncSession,
    runtime: Runtime,
    email: str,
    password: str,
    user_agent: str | None,
) -> TokenPair:
    """Check the credentials from the client of `request` and open a session."""
    client = client_address(request.scope)
    return await service.login(
        session, runtime, email=email, password=password, client=client, user_agent=user_agent
    )


@router.post("/refresh", response_model=TokenPair, responses=problem_responses(401, 422, 429))
async def refresh(body: RefreshRequest, session: SessionDep, runtime: RuntimeDep) -> TokenPair:
    """Rotate a refresh token into a new token pair."""
    return await service.refresh(session, runtime, body.refresh_token)


@router.post(
    "/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 422)
)
async def logout(
    body: RefreshRequest, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """End this session: the refresh token's family and the access token stop working."""
    await service.logout(session, runtime, principal, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
