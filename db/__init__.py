"""Persistence (SQLAlchemy models, gallery, FAISS index, Alembic migrations): built by the
enrolment issue on top of the runtime library; nothing here yet."""
