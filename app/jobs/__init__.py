"""Jobs beyond one clip: rendering a request into a file, the batch journal, local and Ray batch runners."""
