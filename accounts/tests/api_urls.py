"""A minimal API for the token tests (independent of the product's endpoints)."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class EchoApi(APIView):
    def get(self, request):
        return Response({"user": request.user.username})

    def post(self, request):
        return Response({"user": request.user.username, "wrote": True}, status=201)


urlpatterns = [path("api/v1/echo/", EchoApi.as_view())]
