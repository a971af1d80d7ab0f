/* repository.c - placeholder, being written. */
