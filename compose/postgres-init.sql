-- Databases of the compose mode: the ledger (realtor, made by the image), MLflow and Airflow.
CREATE DATABASE mlflow OWNER realtor;
CREATE DATABASE airflow OWNER realtor;
