"""The deployment of one instance as several processes, and the proxies in front."""
