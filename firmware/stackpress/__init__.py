"""stackpress firmware: holds a solid-state cell's stack pressure on its own."""
