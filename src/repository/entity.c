/* entity.c - placeholder, being written. */
