"""The catalog service: hospitals, departments, doctors and clinic sessions."""
