"""Factories for staff users and teams."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Group

from accounts.models import Presence, Role, Team, User


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Equipe {n}")
    slug = factory.Sequence(lambda n: f"equipe-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    """A staff user; ``role=`` puts them in that role's group, ``teams=[...]`` in teams."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    is_staff = True
    presence = Presence.ONLINE
    password = factory.django.Password("correct-horse-battery-9")

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs) -> None:
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))

    @factory.post_generation
    def teams(self, create: bool, extracted, **kwargs) -> None:
        if create and extracted:
            self.teams.set(extracted)


def make_user(role: str, **kwargs) -> User:
    return UserFactory(role=role, **kwargs)


__all__ = ["Role", "TeamFactory", "UserFactory", "make_user"]
