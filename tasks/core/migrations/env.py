"""Alembic environment: runs on the connection handed over by ``tasks.core.ledger.migrate``.

From the command line: ``alembic -x url=sqlite:///var/ledger.db upgrade head``
(with ``script_location`` pointing here).
"""

from alembic import context
from sqlalchemy import create_engine

from tasks.core.ledger import Base

target_metadata = Base.metadata
config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run()
