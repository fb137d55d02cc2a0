"""What the map views draw, in the form the browser draws it from (see :mod:`.volume`)."""
