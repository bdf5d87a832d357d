"""Static files of the web console, served at /console/static/."""
