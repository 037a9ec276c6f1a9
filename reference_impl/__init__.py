"""Reference implementation of the five edge-management subsystems of the book chapter.

Each module follows the chapter's API and is tested with pytest-edge's own fixtures.
"""
