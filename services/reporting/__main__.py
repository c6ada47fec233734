from services.reporting.app import create_app
from services.reporting.commands import COMMANDS
from services.reporting.config import Settings
from shared.cli import main

main(Settings, create_app, COMMANDS)  # type: ignore[arg-type]  # create_app takes the service's own Settings
