"""Support package of the DAG files: configuration, the task table and the operator factory.

Airflow puts ``dags/`` on ``sys.path``, so the DAG files import ``realtor.*``; the folder is
listed in ``dags/.airflowignore`` because it holds no DAG. Nothing here imports the ML stack.
"""
