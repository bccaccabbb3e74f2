"""The Streamlit app: ``streamlit run ui/app.py`` (see README.md)."""
