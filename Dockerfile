# The pipeline image: one image, the role chosen by ROLE (ingest | worker | api | all).
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
# .dockerignore keeps .env and secrets/ out: secrets reach the container as files at run time.
COPY . .
USER node
EXPOSE 8080
ENTRYPOINT ["node", "bin/usage-meter.js"]
CMD ["start"]
