"""Audio handling: fetch delivered files, decode them once in isolated workers, measure them."""
