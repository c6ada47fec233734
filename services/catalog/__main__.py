from services.catalog.app import create_app
from services.catalog.commands import COMMANDS
from services.catalog.config import Settings
from shared.cli import main

main(Settings, create_app, commands=COMMANDS)  # type: ignore[arg-type]  # create_app takes the service's own Settings
