"""The ``auditql`` command, what its operator commands do, and the server process."""
