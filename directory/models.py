"""The directory the events are about: users, groups, API tokens and brands, shaped like
authentik's so that its API clients read them unchanged."""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
from datetime import timedelta
from typing import Any
from uuid import uuid4

from django.contrib import auth
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import Permission
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import escape

ANONYMOUS_USERNAME = "AnonymousUser"
SUPERUSER_GROUP_NAME = "Administrators"
AUDITOR_GROUP_NAME = "Auditors"
_KEY_ALPHABET = string.ascii_letters + string.digits


class UserType(models.TextChoices):
    INTERNAL = "internal"
    EXTERNAL = "external"
    SERVICE_ACCOUNT = "service_account"
    INTERNAL_SERVICE_ACCOUNT = "internal_service_account"


class UserQuerySet(models.QuerySet["User"]):
    def exclude_anonymous(self) -> UserQuerySet:
        return self.exclude(username=ANONYMOUS_USERNAME)

    def with_superuser_flag(self) -> UserQuerySet:
        """Annotate ``is_superuser`` so listing users costs one query, not one per user."""
        superuser_groups = Group.objects.filter(users=OuterRef("pk"), is_superuser=True)
        return self.annotate(_is_superuser=Exists(superuser_groups))


class UserManager(BaseUserManager["User"]):
    def get_queryset(self) -> UserQuerySet:
        return UserQuerySet(self.model, using=self._db)

    def exclude_anonymous(self) -> UserQuerySet:
        return self.get_queryset().exclude_anonymous()

    def create_user(
        self, username: str, email: str = "", password: str | None = None, **extra: Any
    ) -> User:
        user = self.model(username=username, email=self.normalize_email(email or ""), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(
        self, username: str, email: str = "", password: str | None = None, **extra: Any
    ) -> User:
        user = self.create_user(username, email, password, **extra)
        group, _ = Group.objects.get_or_create(
            name=SUPERUSER_GROUP_NAME, defaults={"is_superuser": True}
        )
        group.users.add(user)
        return user

    def anonymous(self) -> User:
        """The persisted stand-in for anonymous requests, so events always carry a user pk."""
        user, _ = self.get_or_create(
            username=ANONYMOUS_USERNAME,
            defaults={"name": "Anonymous user", "is_active": False, "path": "users"},
        )
        return user


class User(AbstractBaseUser):
    """A person or service account. Integer pk, as authentik's API and Elastic expect."""

    uuid = models.UUIDField(default=uuid4, unique=True, editable=False)
    username = models.CharField(
        max_length=150, unique=True, validators=[UnicodeUsernameValidator()]
    )
    name = models.TextField(blank=True, help_text="The user's display name.")
    email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)
    path = models.TextField(default="users")
    type = models.CharField(max_length=32, choices=UserType.choices, default=UserType.INTERNAL)
    attributes = models.JSONField(default=dict, blank=True)
    date_joined = models.DateTimeField(default=timezone.now)
    last_updated = models.DateTimeField(auto_now=True)
    password_change_date = models.DateTimeField(auto_now_add=True)
    user_permissions = models.ManyToManyField(
        Permission, blank=True, related_name="directory_users"
    )

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        ordering = ["username"]
        indexes = [models.Index(fields=["path"]), models.Index(fields=["type"])]

    def __str__(self) -> str:
        return self.username

    def set_password(self, raw_password: str | None) -> None:
        super().set_password(raw_password)
        self.password_change_date = timezone.now()

    @property
    def is_anonymous_stand_in(self) -> bool:
        return self.username == ANONYMOUS_USERNAME

    @cached_property
    def is_superuser(self) -> bool:
        annotated = self.__dict__.get("_is_superuser")
        if annotated is not None:
            return bool(annotated)
        if self.pk is None:
            return False
        return self.groups.filter(is_superuser=True).exists()

    @property
    def is_staff(self) -> bool:
        return self.is_superuser

    @property
    def uid(self) -> str:
        """A stable hashed identifier that does not reveal the database id."""
        return hashlib.sha256(f"{self.uuid.hex}-{self.pk}".encode()).hexdigest()

    @property
    def avatar(self) -> str:
        """An initials avatar as a data URI: no third-party request, stable across polls."""
        initials = "".join(part[0] for part in (self.name or self.username).split()[:2]).upper()
        hue = int(hashlib.sha256(self.username.encode()).hexdigest()[:6], 16) % 360
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
            f'<rect width="64" height="64" fill="hsl({hue},45%,40%)"/>'
            '<text x="50%" y="50%" fill="#fff" font-family="sans-serif" font-size="28" '
            f'text-anchor="middle" dominant-baseline="central">{escape(initials[:2])}</text></svg>'
        )
        return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()

    # Permissions: a superuser group grants everything; otherwise the user's own permissions
    # and those of its groups apply (see directory.backends).
    def has_perm(self, perm: str, obj: Any = None) -> bool:
        if self.is_active and self.is_superuser:
            return True
        return self._ask_backends("has_perm", perm, obj)

    def has_perms(self, perm_list: Any, obj: Any = None) -> bool:
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        if self.is_active and self.is_superuser:
            return True
        return self._ask_backends("has_module_perms", app_label)

    def _ask_backends(self, method: str, *args: Any) -> bool:
        """True when a backend grants it; a backend raising PermissionDenied settles a no."""
        for backend in auth.get_backends():
            check = getattr(backend, method, None)
            if check is None:
                continue
            try:
                if check(self, *args):
                    return True
            except PermissionDenied:
                return False
        return False


def _random_num_pk() -> int:
    return secrets.randbelow(2**31 - 1000) + 1000


class Group(models.Model):
    """A group of users; a superuser group makes its members administrators."""

    group_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    num_pk = models.IntegerField(unique=True, default=_random_num_pk, editable=False)
    name = models.CharField(max_length=150, unique=True)
    is_superuser = models.BooleanField(
        default=False, help_text="Users in this group are administrators."
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    attributes = models.JSONField(default=dict, blank=True)
    users = models.ManyToManyField(User, blank=True, related_name="groups")
    permissions = models.ManyToManyField(Permission, blank=True, related_name="directory_groups")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def default_token_key() -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(60))


def default_token_expiry() -> Any:
    return timezone.now() + timedelta(days=365)


class TokenIntent(models.TextChoices):
    VERIFICATION = "verification", "Verification"
    API = "api", "API token"
    RECOVERY = "recovery", "Recovery"
    APP_PASSWORD = "app_password", "App password"


class TokenQuerySet(models.QuerySet["Token"]):
    def valid(self) -> TokenQuerySet:
        """Tokens that have not expired and whose user is active."""
        return self.filter(Q(expiring=False) | Q(expires__gt=timezone.now()), user__is_active=True)


class Token(models.Model):
    """A credential. Only ``api`` tokens authenticate against the REST API."""

    token_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    identifier = models.SlugField(
        max_length=255, unique=True, help_text="The token's unique name, used in its URL."
    )
    key = models.CharField(max_length=255, default=default_token_key, unique=True)
    intent = models.CharField(
        max_length=32, choices=TokenIntent.choices, default=TokenIntent.VERIFICATION
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    description = models.TextField(blank=True)
    expires = models.DateTimeField(null=True, blank=True, default=default_token_expiry)
    expiring = models.BooleanField(default=True)
    managed = models.TextField(null=True, blank=True, default=None)

    objects = TokenQuerySet.as_manager()

    class Meta:
        ordering = ["identifier"]
        permissions = [
            ("view_token_key", "View token's key"),
            ("set_token_key", "Set a token's key"),
        ]
        indexes = [models.Index(fields=["expiring", "expires"])]

    def __str__(self) -> str:
        return self.identifier

    @property
    def is_expired(self) -> bool:
        return bool(self.expiring and self.expires and self.expires <= timezone.now())


class BrandQuerySet(models.QuerySet["Brand"]):
    def default(self) -> Brand | None:
        """The default brand; None while there is none (a lookup never creates one)."""
        return self.filter(default=True).first()

    def for_host(self, host: str) -> Brand | None:
        """The brand whose domain is the host or a parent of it, else the default brand."""
        host = host.split(":")[0].lower().rstrip(".")
        best: Brand | None = None
        for brand in self.exclude(domain=""):
            domain = brand.domain.lower()
            if (host == domain or host.endswith("." + domain)) and (
                best is None or len(domain) > len(best.domain)
            ):
                best = brand
        return best or self.default()


class Brand(models.Model):
    """Branding for a domain; every event records the brand its request came through."""

    brand_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    domain = models.CharField(
        max_length=255,
        help_text="Domain that activates this brand; a parent domain matches its subdomains.",
    )
    name = models.CharField(max_length=255, help_text="The brand's title.")
    default = models.BooleanField(default=False)
    attributes = models.JSONField(default=dict, blank=True)

    objects = BrandQuerySet.as_manager()

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(
                fields=["default"], condition=Q(default=True), name="directory_brand_one_default"
            )
        ]

    def __str__(self) -> str:
        return self.name


__all__ = [
    "ANONYMOUS_USERNAME",
    "Brand",
    "Group",
    "Token",
    "TokenIntent",
    "User",
    "UserType",
]
