"""Pictures made from search results: contact sheets, overlays of faces and figures, maps."""
