"""Identity seed programs, shipped with the package (``efe.seed_programs``); they import nothing of efe."""
