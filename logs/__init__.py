"""Process logs: structured logging for the web, worker and scheduler processes, the log files
``make run`` keeps, the System > Logs page and ``manage.py logs`` that read them."""
