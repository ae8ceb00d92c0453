"""Deployment: the process roles, their configs, and the local fleet (``deploy.fleet``)."""
