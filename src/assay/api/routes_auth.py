"""Who am I, users (admin), passwords and API tokens."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from assay.api.deps import Principal, acting, current_principal, reading, require_roles
from assay.auth import service as auth
from assay.registry.roles import ADMIN

router = APIRouter(prefix="/api", tags=["users and tokens"])


class Me(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    authenticated_by: str
    must_change_password: bool


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="What the token is for")
    username: str | None = Field(None, max_length=200,
                                 description="Owner (admins only); default: yourself")
    expires_in_days: int | None = Field(90, ge=1, le=auth.MAX_TOKEN_DAYS,
                                        description="Lifetime in days; null = never (admins)")


class TokenOut(BaseModel):
    key_id: str
    name: str
    username: str
    state: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewToken(TokenOut):
    token: str = Field(description="The token itself; shown only this once")


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(None, min_length=1, max_length=1000,
                                 description="New password; for another user (admins), omit "
                                             "it for a random one-time password")
    current_password: str | None = Field(
        None, min_length=1, max_length=1000,
        description="Your current password: required to change your own")


class PasswordOut(BaseModel):
    username: str
    one_time_password: str | None = Field(
        None, description="The generated password, shown once (when none was given)")


class UserOut(BaseModel):
    username: str
    display_name: str | None
    email: str | None
    active: bool
    roles: list[str]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    display_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=200)
    roles: list[str] = Field(default_factory=list, max_length=10)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: list[str] = Field(default_factory=list, max_length=10, description="Roles to grant")
    revoke: list[str] = Field(default_factory=list, max_length=10,
                              description="Roles to take away")
    active: bool | None = Field(None, description="Activate or deactivate the user")


class NewUser(UserOut):
    one_time_password: str = Field(description="Initial password, shown once; must be changed")


def _token_out(row, username: str) -> dict:
    return {"key_id": row.key_id, "name": row.name, "username": username,
            "state": auth.token_state(row), "created_at": auth.aware(row.created_at),
            "expires_at": auth.aware(row.expires_at), "revoked_at": auth.aware(row.revoked_at),
            "last_used_at": auth.aware(row.last_used_at)}


def _user_out(user) -> dict:
    return {"username": user.username, "display_name": user.display_name, "email": user.email,
            "active": bool(user.active), "roles": sorted(user.roles)}


@router.get("/me", response_model=Me, summary="The authenticated user")
def me(principal: Principal = Depends(current_principal)) -> dict:
    return {"username": principal.username, "display_name": principal.display_name,
            "roles": sorted(principal.roles), "authenticated_by": principal.via,
            "must_change_password": principal.must_change_password}


@router.get("/users", response_model=list[UserOut], summary="Every user (admin)")
def users(request: Request, principal: Principal = Depends(current_principal)) -> list[dict]:
    require_roles(principal, ADMIN)
    from assay.registry import list_users

    with reading(request) as s:
        return [_user_out(u) for u in list_users(s)]


@router.post("/users", response_model=NewUser, status_code=201,
             summary="Add a user with roles and a one-time password (admin)")
def add_user(body: UserIn, request: Request,
             principal: Principal = Depends(current_principal)) -> dict:
    require_roles(principal, ADMIN)
    from assay.registry import add_user as registry_add_user

    with acting(request, principal) as (s, actor):
        user = registry_add_user(s, actor, body.username, display_name=body.display_name,
                                 email=body.email, roles=body.roles)
        password = auth.set_password(s, actor, user.username, None, one_time=True)
        return {**_user_out(user), "one_time_password": password}


@router.patch("/users/{username}", response_model=UserOut,
              summary="Grant or revoke roles, activate or deactivate a user (admin)")
def change_user(body: UserPatch, request: Request,
                username: str = Path(..., min_length=1, max_length=100),
                principal: Principal = Depends(current_principal)) -> dict:
    from assay.errors import InputError
    from assay.registry import grant_role, revoke_role, set_user_active

    require_roles(principal, ADMIN)
    if not body.grant and not body.revoke and body.active is None:
        raise InputError("nothing to change: give grant, revoke or active")
    with acting(request, principal) as (s, actor):
        user = None
        for role in body.grant:
            user = grant_role(s, actor, username, role)
        for role in body.revoke:
            user = revoke_role(s, actor, username, role)
        if body.active is not None:
            user = set_user_active(s, actor, username, body.active)
            if not body.active:
                auth.close_sessions_of(s, user)
        return _user_out(user)


@router.post("/users/{username}/password", response_model=PasswordOut,
             summary="Change a password: your own (with the current one) or, for admins, "
                     "anyone's; the user's other browser sessions end")
def set_password(username: str, body: PasswordIn, request: Request,
                 principal: Principal = Depends(current_principal)) -> dict:
    from assay.api.deps import SESSION_COOKIE

    keep = request.cookies.get(SESSION_COOKIE) if principal.via == "session" else None
    with acting(request, principal) as (s, actor):
        generated = auth.reset_password(s, actor, username, body.password,
                                        current=body.current_password, keep_session=keep)
        return {"username": username, "one_time_password": generated}


@router.get("/tokens", response_model=list[TokenOut],
            summary="API tokens: your own, a user's (admin) or every one with username=*")
def tokens(request: Request, username: str | None = None,
           principal: Principal = Depends(current_principal)) -> list[dict]:
    with acting(request, principal) as (s, actor):
        rows = auth.list_tokens(s, actor, username)
        names = auth.usernames(s, {r.user_id for r in rows})
        return [_token_out(r, names.get(r.user_id, "?")) for r in rows]


@router.post("/tokens", response_model=NewToken, status_code=201,
             summary="Create an API token; the token is in the answer, shown once")
def create_token(body: TokenIn, request: Request,
                 principal: Principal = Depends(current_principal)) -> dict:
    with acting(request, principal) as (s, actor):
        owner = body.username or actor.username
        row, token = auth.create_token(s, actor, owner, body.name,
                                       expires_in_days=body.expires_in_days)
        return {**_token_out(row, owner), "token": token}


@router.delete("/tokens/{key_id}", response_model=TokenOut, summary="Revoke an API token")
def revoke_token(key_id: str, request: Request,
                 principal: Principal = Depends(current_principal)) -> dict:
    with acting(request, principal) as (s, actor):
        row = auth.revoke_token(s, actor, key_id)
        return _token_out(row, auth.usernames(s, {row.user_id}).get(row.user_id, "?"))
