"""Leaderboard tables from MLflow records (statistics, tables, plots); no mlflow import here."""
