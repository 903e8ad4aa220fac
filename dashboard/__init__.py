"""The Dash app over the same API the CLI calls: `dashboard.app.create_app`, served by
`ctxsim dashboard`. Nothing is imported here so that the CLI starts without loading Dash."""
