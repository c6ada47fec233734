from services.gateway.app import create_app
from services.gateway.config import Settings
from services.gateway.staff.commands import COMMANDS
from shared.cli import main

main(Settings, create_app, commands=COMMANDS)  # type: ignore[arg-type]  # create_app takes the service's own Settings
