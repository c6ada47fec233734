"""The gateway of OTV: the only public service. Routes the API to the owning services, serves the web
frontends, and (later) owns staff accounts, sessions, API keys, the audit log and the bot defence."""
