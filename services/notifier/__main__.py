from services.notifier.app import create_app
from services.notifier.config import Settings
from shared.cli import main

main(Settings, create_app)  # type: ignore[arg-type]  # create_app takes the service's own Settings
