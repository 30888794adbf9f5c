# The pipeline image: one image, the role chosen by ROLE (ingest | worker | api | all).
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY . .
USER node
EXPOSE 8080
ENTRYPOINT ["node", "bin/usage-meter.js"]
CMD ["start"]
