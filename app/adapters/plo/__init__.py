"""PLO messages (pleie- og omsorgsmeldinger) between municipalities and hospitals / GPs: see README.md."""
