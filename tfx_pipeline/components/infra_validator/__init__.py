"""InfraValidator with an executor that serves the candidate in a real model server process."""
