"""The ethical corpus pipeline: licensed partner audio in, versioned training corpora out."""
