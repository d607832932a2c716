import pytest


@pytest.fixture
def make_viewer(qtbot):
    """napari viewers, closed after the test. napari's own pytest plugin (``make_napari_viewer``) is switched off
    in pyproject.toml: its autouse fixtures import Qt into every test of the suite."""
    import napari

    viewers = []

    def make(**kwargs):
        viewer = napari.Viewer(show=False, **kwargs)
        viewers.append(viewer)
        return viewer

    yield make
    for viewer in viewers:
        viewer.close()
