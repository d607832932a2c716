from csunet.cli import app

app()
